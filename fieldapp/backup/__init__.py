"""Off-site backup, restore and the media audit (arts. 7, 25); server epochs that tell phones a
restore happened, so they offer again what the server had acknowledged."""
