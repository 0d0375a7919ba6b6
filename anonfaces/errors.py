"""Errors the library raises on purpose.

Library code raises these; only the command line turns them into exit codes
(`anonfaces.cli`). Messages show the offending values.
"""


class AnonfacesError(Exception):
    """Base class: a problem with the user's input, settings or files."""


class BadInputError(AnonfacesError, ValueError):
    """Input data or a setting is invalid (the message says which and why)."""


class UnsafeFileError(AnonfacesError):
    """A file asked for something the safe loaders refuse (for example a pickle
    that would import a class or call a function)."""


class FileFormatError(AnonfacesError):
    """A file is not in the format it claims to be."""
