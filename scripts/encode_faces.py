#!/usr/bin/env python
"""Encode faces: the same command as `anonfaces encode` (see --help)."""

from anonfaces.cli.encode import command

if __name__ == "__main__":
    command(prog_name="encode_faces.py")
