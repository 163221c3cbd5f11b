-- Refresh-token families end at an absolute time (RFC 9700 §4.14.2:
-- rotation renews a token, never its family, so a session used every few
-- days still ends and its user logs in again). Families issued before this
-- migration end 90 days (the default `refresh_token_max_lifetime_secs`)
-- after their first token.
ALTER TABLE refresh_tokens ADD COLUMN family_expires_at BIGINT;
UPDATE refresh_tokens SET family_expires_at =
    (SELECT MIN(r.issued_at) FROM refresh_tokens r WHERE r.family_id = refresh_tokens.family_id) + 7776000;
