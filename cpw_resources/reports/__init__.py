"""Reports a person looks at: self-contained HTML pages with PNG charts beside them, made from
the event store (:mod:`.performance`, :mod:`.costs`; the page in :mod:`.page`)."""
