-- Agentic chat (issue 12): whether a session lets the model call tools, and write tools.
-- Set once by the session's creator; nothing in a message or a document can change them.
ALTER TABLE chat_sessions ADD COLUMN tools INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_sessions ADD COLUMN write_tools INTEGER NOT NULL DEFAULT 0;
