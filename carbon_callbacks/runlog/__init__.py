"""The JSON Lines run log: the writer, the reader and the schema every record is checked against."""
