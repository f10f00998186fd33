"""Pull as the phone does: follow `more` until the server has nothing further right now."""
from __future__ import annotations


def pull_all(client, cursor="0", max_pages: int = 1000) -> dict:
    """Every page from ``cursor``: the cases and comments of all of them, the last cursor, and how
    many pages it took. Fails loudly rather than looping for ever."""
    cases, comments, pages = [], [], []
    for _ in range(max_pages):
        response = client.get("/api/v1/sync/pull", query_string={"cursor": cursor})
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        pages.append(page)
        cases += page["cases"]
        comments += page["comments"]
        cursor = page["cursor"]
        if not page["more"]:
            return {"cases": cases, "comments": comments, "cursor": cursor, "pages": pages,
                    "full": pages[0]["full"], "assignments": page["assignments"]}
    raise AssertionError(f"pull did not finish in {max_pages} pages")
