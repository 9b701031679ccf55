def set_reminder(text: str | None, minutes: int | None = None, repeat: None | bool = None, tags: list[str] | None = None):
    """Set a reminder.

    Args:
        text: What to remind about.
        minutes: Minutes from now.
        repeat: Whether it repeats.
        tags: Tags for the reminder.
    """
    return text
