"""Exceptions that mean "the user's input is wrong", as opposed to a bug in this package."""


class UserInputError(ValueError):
    """Bad input from the user (a file, a parameter, a command-line value).

    The message is a single line that names the file (or parameter) and the problem; the CLI
    prints it without a traceback and exits with status 2.
    """
