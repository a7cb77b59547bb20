ALTER TABLE users ADD COLUMN display_name text;
UPDATE users SET display_name = login WHERE display_name IS NULL;
