-- Issue 9: where each page of a version's extracted text begins and ends (paged formats: PDF).
-- The rag Worker has no R2 binding, so the spans it needs live here: a citation reports the page
-- that holds its quoted characters, and a hit the pages its chunk spans (page_start/page_end).
-- Versions stored before this migration have no rows: they keep reporting the chunk's first page.
CREATE TABLE version_pages (
    tenant_id    TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    page         INTEGER NOT NULL,         -- 1-based
    char_start   INTEGER NOT NULL,         -- into the version's extracted text
    char_end     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, document_id, version, char_start)
);
