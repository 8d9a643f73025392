"""``python -m nemo_opt`` runs the command line."""

from nemo_opt.cli import main

main()
