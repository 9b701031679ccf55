def search_archive(query: str, page: int = 0, exact: bool = False, limit: int = 10):
    """
    Search the archival memory.

    Args:
        query: String to search for.
        page: Allows you to page through results. Only use on a follow-up
            query. Defaults to 0 (first page).
        exact: Match the query exactly.
        limit: Maximum number of results.
    """
    return []
