"""The web portal: teams sign in with their token, upload through submit(), see their history and the board; organisers run the challenge from its admin pages."""
