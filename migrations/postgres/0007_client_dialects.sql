-- Clients are bound to the provider dialects they were created for (SPEC
-- §5): a comma-separated list of dialect names. Existing clients keep the
-- standard endpoint (`payvalida`), and a sandbox seed also keeps its own
-- provider's dialect.
ALTER TABLE clients ADD COLUMN dialects TEXT NOT NULL DEFAULT 'payvalida';
UPDATE clients SET dialects = 'nequi,payvalida' WHERE client_id = 'nequi-sandbox';
UPDATE clients SET dialects = 'payvalida,peinau' WHERE client_id = '641281901508761220281';
UPDATE clients SET dialects = 'payme,payvalida' WHERE client_id = 'your_client_id';
UPDATE clients SET dialects = 'fegora,payvalida' WHERE client_id = 'apiApp';
