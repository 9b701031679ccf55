import asyncio


async def fetch_page(url: str, timeout: float = 5.0):
    """Fetch a web page.

    Args:
        url: The URL to fetch.
        timeout: Seconds to wait.
    """
    await asyncio.sleep(0)
    return url
