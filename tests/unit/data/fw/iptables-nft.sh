# Rules added through iptables (nf_tables backend), run inside a throwaway namespace.
iptables -A INPUT -p tcp --dport 8443 -j REJECT --reject-with tcp-reset
iptables -A INPUT -p tcp -m multiport --dports 25,587 -j DROP
iptables -A INPUT -p tcp --dport 6000 -m hashlimit --hashlimit-above 5/sec --hashlimit-name rl -j REJECT --reject-with tcp-reset
iptables -A INPUT -m conntrack --ctstate INVALID -j DROP
ip6tables -A INPUT -p tcp --dport 8443 -j REJECT --reject-with tcp-reset
