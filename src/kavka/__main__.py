from kavka.cli import run

raise SystemExit(run())
