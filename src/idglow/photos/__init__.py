"""Real photos end to end: a folder of people's photos and group photos turned into SFT and benchmark manifests."""
