"""The one exception type for user mistakes.

The CLI turns an :class:`EdgesegError` into one line on stderr and a non-zero exit, without a
traceback. Anything else that escapes is a bug in edgeseg and keeps its traceback.
"""


class EdgesegError(Exception):
    """A mistake the user can fix: a missing file, a bad value, an absent optional dependency.

    The message is a single line that says what is wrong and what to do about it.
    """


def missing_extra(module: str, extra: str) -> EdgesegError:
    """Error for an optional dependency that is not installed, naming the extra that brings it."""
    return EdgesegError(
        f"{module} is not installed; install it with: pip install 'edgeseg[{extra}]'"
    )
