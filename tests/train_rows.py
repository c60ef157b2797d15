"""Four instruction → email rows (three train, one validation) in one made-up voice, for the training tests."""

ROWS = [
    {"instruction": "Tell Sam the report is late", "output": "Hey Sam!\n\nReport's late, sorry.\n\nZed x"},
    {
        "instruction": "Thank Priya for lunch",
        "input": "Lunch was fun! Priya",
        "output": "Hey Priya!\n\nThanks for lunch.\n\nZed x",
    },
    {"instruction": "Ask Tom for the invoice", "output": "Hey Tom!\n\nInvoice, please?\n\nZed x"},
    {"instruction": "Confirm Friday with Max", "output": "Hey Max!\n\nFriday works.\n\nZed x", "split": "validation"},
]
