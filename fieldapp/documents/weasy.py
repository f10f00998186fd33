"""WeasyPrint, loaded without its side effect on the rest of the process.

On import WeasyPrint sets Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES = True``. The
media pipeline relies on it staying False to notice a photo cut off in transit (it flags it as
truncated and keeps the original as received); after the first PDF of a process it would silently
stop. So WeasyPrint is imported only here, and the flag is put back at once. The documents it draws
embed our own complete previews, so it does not need the flag. Loading is also deferred because it
loads Pango: only when a document is made, not when the app starts.
"""
from __future__ import annotations

import functools
import threading

_LOCK = threading.Lock()


@functools.cache
def weasyprint():
    from PIL import ImageFile
    with _LOCK:
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        try:
            import weasyprint as module
            import weasyprint.urls  # noqa: F401 — the fetchers use it
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before
    return module
