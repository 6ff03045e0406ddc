# Streamlit's pets example through plugboard: `./demo.sh` makes pets.db, then
#   streamlit run examples/streamlit_app.py --secrets.files examples/secrets.toml
import streamlit as st
from plugboard.streamlit import PlugboardConnection

conn = st.connection("pets_db", type=PlugboardConnection)
if st.button("Add a pet"):
    conn.execute("INSERT INTO pet_owners (person, pet) VALUES (:person, :pet)",
                 params={"person": "kim", "pet": "owl"})
pets = conn.query("SELECT * FROM pet_owners ORDER BY person", ttl="10m")
st.dataframe(pets)
st.caption(f"{len(pets)} pets · {conn.last_outcome}")
