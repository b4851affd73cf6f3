"""Label quality: agreement, consensus, validation, review, data card, gold, unsure, adjudication."""
