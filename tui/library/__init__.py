"""The model library (no Textual): GGUF headers, model cards, scanning the folders other tools use,
hub downloads, and splitting a reply's thinking section off."""
