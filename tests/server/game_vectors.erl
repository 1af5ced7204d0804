%%% Decodes and re-encodes known-answer vectors with the compiled Protocol
%%% module (used by selftest.py):
%%%   erl -noinput -pa EBIN -run game_vectors main -extra VECTORS_FILE
%%% For every "<description>\t<hex>" line prints
%%%   <description>\t<decoded>\t<hex of the re-encoded value>
%%% where <decoded> is "setUsername <hex name>", "addScore <int>",
%%% "accepted", "rejected <hex reason>" or "error".
-module(game_vectors).

-export([main/0, main/1]).

main() -> main([]).

main(_) ->
    [File] = init:get_plain_arguments(),
    {ok, Bin} = file:read_file(File),
    Lines = binary:split(Bin, <<"\n">>, [global, trim_all]),
    lists:foreach(fun check/1, Lines),
    erlang:halt(0).

check(Line) ->
    [Desc, Hex] = binary:split(Line, <<"\t">>),
    Type = case Desc of
               <<"Request", _/binary>> -> 'Request';
               <<"Response", _/binary>> -> 'Response'
           end,
    Bytes = binary:decode_hex(string:trim(Hex)),
    {Decoded, Reencoded} =
        case 'Protocol':decode(Type, Bytes) of
            {ok, Value} ->
                {ok, Enc} = 'Protocol':encode(Type, Value),
                {show(Value), game_proto:hex(iolist_to_binary(Enc))};
            _ ->
                {<<"error">>, <<>>}
        end,
    io:format("~s\t~s\t~s~n", [Desc, Decoded, Reencoded]).

show({setUsername, #{name := N}}) -> ["setUsername ", game_proto:hex(N)];
show({addScore, #{value := V}}) -> ["addScore ", integer_to_list(V)];
show({accepted, _}) -> "accepted";
show({rejected, #{reason := R}}) -> ["rejected ", game_proto:hex(R)].
