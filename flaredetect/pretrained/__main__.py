"""``python -m flaredetect.pretrained <run dir>``: bundle a training run as the package's detector."""
from flaredetect.pretrained import main

raise SystemExit(main())
