import sys

from engine.cli import build_parser, main
from engine.cli.train import trainer_command


def test_train_passes_every_argument_to_the_training_process(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr("engine.cli.train.subprocess.call", lambda cmd: calls.append(cmd) or 0)
    assert main(["train", "--project", "P", "--recipe", "mcanet", "--steps", "5"]) == 0
    assert calls == [[sys.executable, "-m", "trainers", "fit", "--project", "P", "--recipe", "mcanet", "--steps", "5"]]


def test_other_commands_still_refuse_unknown_arguments(capsys) -> None:
    try:
        main(["models", "list", "--bogus"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_frozen_bundle_uses_its_own_executable(monkeypatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert trainer_command("fit", "--x") == [sys.executable, "trainers", "fit", "--x"]
    assert build_parser() is not None
