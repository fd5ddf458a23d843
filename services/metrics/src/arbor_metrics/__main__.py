"""``python -m arbor_metrics serve|migrate``."""

from arbor_metrics.bootstrap import MIGRATIONS, SERVICE, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared.cli import service_cli

service_cli(SERVICE, MetricsSettings, create_app, MIGRATIONS)
