"""The inbox: filing suggestions, categories, events and tasks from incoming mail."""
