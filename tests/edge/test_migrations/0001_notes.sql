-- Tiny stand-in migration for the edge harness (the real ones live in migrations/).
CREATE TABLE notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL, -- every row carries its tenant; a ';' in a comment is fine
  body TEXT NOT NULL
);
CREATE INDEX notes_tenant ON notes(tenant_id);
CREATE VIRTUAL TABLE notes_fts USING fts5(
  body, content='notes', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
  INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body);
END;
