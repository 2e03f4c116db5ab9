"""``python -m hdrvideo.train`` / ``torchrun -m hdrvideo.train``: the ``hdrvideo train`` command."""

from .cli import train_command

if __name__ == "__main__":
    train_command(prog_name="hdrvideo.train")
