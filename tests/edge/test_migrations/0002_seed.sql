INSERT INTO notes(tenant_id, body) VALUES ('t0', 'seeded; with a semicolon in ''quotes''');
