%%% Protocol helpers for the reference server: BER framing of the byte
%%% stream, decoding with the asn1ct-generated 'Protocol' module,
%%% validation of requests, encoding of responses and log-line formatting.
-module(game_proto).

-export([frame/1,
         decode_request/1,
         valid_request/1,
         classify/1,
         response/1,
         responses/0,
         hex/1,
         max_pdu_len/0]).

%% Largest PDU body (the value part of the outer TLV) we accept.
-define(MAX_LEN, 65536).
%% Longest tag we accept (identifier octets); real requests use one octet.
-define(MAX_TAG_OCTETS, 5).

-type outcome() :: {set_username, binary()}
                 | {add_score, integer()}
                 | {rejected, binary()}.
-export_type([outcome/0]).

max_pdu_len() -> ?MAX_LEN.

%%--------------------------------------------------------------------
%% frame(Buffer) -> {ok, TLV, Rest} | more | {error, Reason}
%%
%% Splits one complete outer TLV off the front of Buffer, looking only at
%% the identifier and length octets. Indefinite lengths, lengths that need
%% more than 4 octets and lengths over 64 KiB are errors.
%%--------------------------------------------------------------------
frame(<<>>) ->
    more;
frame(<<_:3, 31:5, Rest/binary>> = Bin) ->
    tag_continuation(Rest, 1, Bin);
frame(<<_:8, Rest/binary>> = Bin) ->
    length_octets(Rest, 1, Bin).

tag_continuation(_, N, _) when N >= ?MAX_TAG_OCTETS ->
    {error, tag_too_long};
tag_continuation(<<>>, _, _) ->
    more;
tag_continuation(<<1:1, _:7, Rest/binary>>, N, Bin) ->
    tag_continuation(Rest, N + 1, Bin);
tag_continuation(<<0:1, _:7, Rest/binary>>, N, Bin) ->
    length_octets(Rest, N + 1, Bin).

length_octets(<<>>, _, _) ->
    more;
length_octets(<<0:1, Len:7, _/binary>>, HdrLen, Bin) ->
    body(HdrLen + 1, Len, Bin);
length_octets(<<16#80, _/binary>>, _, _) ->
    {error, indefinite_length};
length_octets(<<1:1, N:7, Rest/binary>>, HdrLen, Bin) when N =< 4 ->
    case Rest of
        <<Len:N/unit:8, _/binary>> -> body(HdrLen + 1 + N, Len, Bin);
        _ -> more
    end;
length_octets(_, _, _) ->
    {error, length_too_long}.

body(_HdrLen, Len, _Bin) when Len > ?MAX_LEN ->
    {error, length_too_long};
body(HdrLen, Len, Bin) ->
    Total = HdrLen + Len,
    case Bin of
        <<TLV:Total/binary, Rest/binary>> -> {ok, TLV, Rest};
        _ -> more
    end.

%%--------------------------------------------------------------------
%% decode_request(TLV) -> {ok, Request} | error
%%--------------------------------------------------------------------
decode_request(TLV) ->
    try 'Protocol':decode('Request', TLV) of
        {ok, Req} ->
            case valid_request(Req) of
                true -> {ok, Req};
                false -> error
            end;
        _ -> error
    catch
        _:_ -> error
    end.

%% A decoded Request with the value types classify/1 expects.
valid_request({setUsername, #{name := Name}}) -> is_binary(Name);
valid_request({addScore, #{value := V}}) -> is_integer(V);
valid_request(_) -> false.

%%--------------------------------------------------------------------
%% classify(Request) -> outcome()
%%--------------------------------------------------------------------
classify({setUsername, #{name := <<>>}}) ->
    {rejected, <<"empty name">>};
classify({setUsername, #{name := Name}}) ->
    case unicode:characters_to_list(Name, utf8) of
        Chars when is_list(Chars), length(Chars) > 32 ->
            {rejected, <<"name longer than 32 characters">>};
        Chars when is_list(Chars) ->
            {set_username, Name};
        _ ->
            {rejected, <<"name is not valid UTF-8">>}
    end;
classify({addScore, #{value := V}}) when V < 0 ->
    {rejected, <<"negative score">>};
classify({addScore, #{value := V}}) ->
    {add_score, V}.

%%--------------------------------------------------------------------
%% Encoded responses, computed once and kept in persistent_term.
%%--------------------------------------------------------------------
responses() ->
    case persistent_term:get(?MODULE, undefined) of
        undefined ->
            Reasons = [<<"empty name">>, <<"name longer than 32 characters">>,
                       <<"name is not valid UTF-8">>, <<"negative score">>,
                       <<"malformed request">>],
            Map = maps:from_list(
                    [{accepted, encode({accepted, 'NULL'})} |
                     [{R, encode({rejected, #{reason => R}})} || R <- Reasons]]),
            persistent_term:put(?MODULE, Map),
            Map;
        Map ->
            Map
    end.

encode(Resp) ->
    {ok, Bin} = 'Protocol':encode('Response', Resp),
    iolist_to_binary(Bin).

%% response(Outcome | {malformed, Bytes}) -> binary()
response({rejected, Reason}) -> maps:get(Reason, responses());
response({malformed, _}) -> maps:get(<<"malformed request">>, responses());
response(_Accepted) -> maps:get(accepted, responses()).

%%--------------------------------------------------------------------
hex(Bin) ->
    string:lowercase(binary:encode_hex(Bin)).
