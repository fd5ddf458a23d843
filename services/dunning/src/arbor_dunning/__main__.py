"""``python -m arbor_dunning serve|migrate``."""

from arbor_dunning.bootstrap import MIGRATIONS, SERVICE, create_app
from arbor_dunning.config import DunningSettings
from arbor_shared.cli import service_cli

service_cli(SERVICE, DunningSettings, create_app, MIGRATIONS)
