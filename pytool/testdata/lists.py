import typing
from typing import List


def tag_items(names: List[str], counts: list[int], anything: list, tags: typing.List[str] = [], matrix: list[list[float]] = []):
    """Tag a batch of items.

    Args:
        names: Names of the items.
        counts: How many of each.
        anything: Untyped list.
        tags: Tags to apply.
        matrix: A matrix of weights.
    """
    return len(names)
