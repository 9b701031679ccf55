from __future__ import annotations

from typing import List


def label_points(points: "List[float]", name: "str", *, unit: Optional[str] = "m"):
    """Label points; keyword-only parameters are parameters too.

    Arguments:
        points (List[float]): The points.
        name (str): A name for the set. Non-ASCII is fine: café, 日本.
        unit (str, optional): Unit of the points.
    """
