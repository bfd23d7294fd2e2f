"""Where Dagster meets the plain core: resources, run config, partitions, jobs, instance.

Assets (``cpw_assets``) and sensors (``cpw_sensors``) both import from here, never from
each other, so the packages have no cycle."""
