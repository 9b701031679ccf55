def roll_dice(sides: int, label: str, verbose: bool, weight: float):
    """Roll a die and report the result.

    Rolls one die with the given number of sides.

    Args:
        sides (int): Number of sides on the die.
        label (str): A label for the roll.
        verbose (bool): Whether to explain the roll.
        weight (float): Bias towards high numbers.

    Returns:
        str: The result.
    """
    import random
    return f"{label}: {random.randint(1, sides)}"
