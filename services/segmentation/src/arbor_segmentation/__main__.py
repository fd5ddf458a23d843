"""``python -m arbor_segmentation serve|migrate``."""

from arbor_segmentation.bootstrap import MIGRATIONS, SERVICE, create_server_app
from arbor_segmentation.config import SegmentationSettings
from arbor_shared.cli import service_cli

service_cli(SERVICE, SegmentationSettings, create_server_app, MIGRATIONS)
