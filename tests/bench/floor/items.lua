-- wrk script for the floor read: GET /items/<a random id of the 100,000 rows>.
math.randomseed(os.time())
request = function()
        return wrk.format("GET", "/items/" .. math.random(1, 100000))
end
