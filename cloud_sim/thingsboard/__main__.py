"""``python -m cloud_sim.thingsboard serve|why|press|scenario``."""

from .cli import main

raise SystemExit(main())
