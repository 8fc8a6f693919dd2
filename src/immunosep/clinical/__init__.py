"""Pure, vectorized clinical rules: SOFA, Sepsis-3, immune state, renal function, regimen, SIDF reversal."""
