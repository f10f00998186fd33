"""Body-camera footage: station manifests, ingest, linking to activities, and recording duties from real footage."""
