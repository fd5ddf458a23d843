from arbor_segmentation.adapters.tables import metadata
from arbor_shared.db.migrations import run_env

run_env(metadata)
