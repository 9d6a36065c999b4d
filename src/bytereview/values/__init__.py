"""Values as documents print them (amounts, dates) and as each data type stores them (typed):
read alike for an extractor's answer, the offline rules, the evidence check and a user's
correction."""
