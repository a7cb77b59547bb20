CREATE TABLE posts (id int);
