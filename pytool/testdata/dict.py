from typing import Any, Dict


def update_record(record: dict, extra: Dict[str, Any], counts: dict[str, int] = {}, plain: Dict = {}):
    """Update a record.

    Args:
        record: The record.
        extra: Extra fields.
        counts: Counts per key.
        plain: An untyped Dict.
    """
    return record
