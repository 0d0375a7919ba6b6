#!/usr/bin/env python
"""Anonymize a folder of photos: the same command as `anonfaces anonymize` (see --help)."""

from anonfaces.cli.anonymize import command

if __name__ == "__main__":
    command(prog_name="anonymize.py")
