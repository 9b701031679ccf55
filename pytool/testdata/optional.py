import typing
from typing import Optional, Union


def lookup(key: Optional[str], fallback: Optional[int] = None, mode: typing.Optional[bool] = None, scale: Union[float, None] = 1.0):
    """Look up a key.

    Args:
        key (Optional[str]): The key; required because it has no default.
        fallback (Optional[int]): Value used when the key is missing.
        mode (typing.Optional[bool]): Strict mode.
        scale: A scale factor.
    """
    return None
