"""``maskwright-desktop``: start the window."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "create_app"]

_logger = logging.getLogger(__name__)


def create_app(argv: list[str] | None = None):  # noqa: ANN201 - QApplication
    """The ``QApplication`` (the existing one when there is one), with Maskwright's icon.

    The theme (View > Theme) is applied by the window from the settings.
    """
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("Maskwright")
    app.setOrganizationName("Maskwright")
    from desktop.theme import app_icon

    app.setWindowIcon(app_icon())
    return app


def main(argv: list[str] | None = None) -> int:
    """Start Maskwright's window; ``maskwright-desktop [PROJECT]`` opens a project at once."""
    parser = argparse.ArgumentParser(prog="maskwright-desktop", description="Maskwright desktop annotation app")
    parser.add_argument("project", nargs="?", type=Path, help="a project folder to open")
    parser.add_argument("--sample", action="store_true", help="open the bundled sample project")
    parser.add_argument("--config-dir", type=Path, default=None, help="settings folder (default: per-user)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    from desktop.main_window import MainWindow
    from desktop.settings import Settings

    window = MainWindow(Settings.load(args.config_dir))
    window.show()
    if args.project is not None:
        window.run_action(lambda w: w.open_project(args.project, create=not (args.project / "project.sqlite").exists()))
    elif args.sample:
        window.run_action(lambda w: w.open_sample())
    else:
        window.run_action(lambda w: w.check_recovery_at_start())
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
