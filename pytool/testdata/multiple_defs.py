def helper(x):
    return x * 2


class NotTheTool:
    def method(self, y: int):
        """Not this one either."""


def the_tool(value: int):
    """The last top-level function is the tool.

    Args:
        value: A value to double.
    """
    return helper(value)


if True:
    def nested_in_if(z):
        return z
