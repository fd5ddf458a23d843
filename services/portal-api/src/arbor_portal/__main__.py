"""``python -m arbor_portal serve|migrate``."""

from arbor_portal.bootstrap import MIGRATIONS, SERVICE, create_server_app
from arbor_portal.config import PortalSettings
from arbor_shared.cli import service_cli

service_cli(SERVICE, PortalSettings, create_server_app, MIGRATIONS)
