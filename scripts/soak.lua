-- wrk script for scripts/soak.sh: POST the review in $SOAK_BODY to every connection, paced by
-- $SOAK_DELAY_MS per request per connection, and count answers that are not 200.
local f = assert(io.open(os.getenv("SOAK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")

function delay()
  return pause
end
