"""``python -m arbor_ingest serve|migrate``."""

from arbor_ingest.bootstrap import MIGRATIONS, SERVICE, create_server_app
from arbor_ingest.config import IngestSettings
from arbor_shared.cli import service_cli

service_cli(SERVICE, IngestSettings, create_server_app, MIGRATIONS)
